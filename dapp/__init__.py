"""dapp"""

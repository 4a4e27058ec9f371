"""flower_sim"""

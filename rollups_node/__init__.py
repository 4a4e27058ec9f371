"""rollups_node"""

"""posterior"""

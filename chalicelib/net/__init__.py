"""Outbound HTTP shared by backends and payment gateways."""

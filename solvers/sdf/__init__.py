"""Signed distance functions from oriented point clouds: the command (sdf), inputs, meshing and metrics."""

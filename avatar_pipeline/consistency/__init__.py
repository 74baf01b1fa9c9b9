"""Consistency: embedders (OpenCLIP, perceptual), scores, thresholds, the gate, reports."""

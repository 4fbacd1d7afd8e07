"""Simulated demo athletes: a physiological simulator that writes real export files plus ground truth."""

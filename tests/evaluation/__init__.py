"""Tests of lugpi_cli.evaluation."""

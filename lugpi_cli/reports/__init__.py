"""Reports: plots (matplotlib, Agg backend) of grids and runs."""

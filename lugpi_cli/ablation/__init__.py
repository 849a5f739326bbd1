"""Ablation grids: every cell an ordinary distill run; summary, best setting, ANOVA and heatmap."""

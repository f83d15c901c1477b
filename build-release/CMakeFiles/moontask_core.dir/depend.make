# Empty dependencies file for moontask_core.
# This may be replaced when dependencies are built.

# Empty dependencies file for moontask.
# This may be replaced when dependencies are built.

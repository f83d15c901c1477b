# Empty dependencies file for mt_unit_tests.
# This may be replaced when dependencies are built.

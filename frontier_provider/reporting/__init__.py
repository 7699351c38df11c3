"""The close as a picture: the state of the books read from staging, for the Close view and the period
report."""

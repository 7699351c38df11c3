"""Account mapping files of the charts of accounts this provider ships (YAML)."""

"""Group consolidation: translation into the presentation currency, intercompany elimination and
the group's statements (IAS 21, IFRS 10). Pure, no Airflow."""

"""ERP readers: SAP over RFC (``sap``) and Oracle E-Business Suite over SQL (``oracle_ebs``).

Pure Python: each reader takes the client or DB-API connection it reads from, so
it can be used and tested without a scheduler.
"""

"""The bundled demo: an SAP RFC double and a deterministic demo ledger for EBS and SAP.

``make demo`` and the tests run the whole close against these, with no ERP at hand.
"""

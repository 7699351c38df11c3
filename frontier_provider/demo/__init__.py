"""The bundled demo: an SAP RFC double and a deterministic demo ledger for EBS and SAP.

``make demo`` and the tests run the whole close against these, with no ERP at hand.
The demo is selected explicitly, through its connections: ``frontier_demo_ebs``
(type ``sqlite``) and ``frontier_demo_sap`` (type ``sap_rfc_demo``, whose hook is
:class:`frontier_provider.demo.sap_hook.DemoSapRfcHook`).
"""

from __future__ import annotations

EBS_CONN_ID = "frontier_demo_ebs"
"""The demo's Oracle EBS connection (a SQLite file)."""
SAP_CONN_ID = "frontier_demo_sap"
"""The demo's SAP connection (the demo SAP system)."""

"""Arrow schemas of the staged ledger datasets.

Money is ``decimal128(38, 4)``: exact, and wide enough for every ISO 4217
currency (at most four minor digits). Debit-positive sign convention: a credit
balance is negative.
"""

from __future__ import annotations

import pyarrow as pa

MONEY = pa.decimal128(38, 4)

#: One row per company, natural account and currency for one fiscal period,
#: as a source reports it (staged under ``gl_balances/``). A source may report
#: an account in several rows (e.g. SAP totals split by business area); the
#: trial balance adds them up.
GL_BALANCE_SCHEMA = pa.schema(
    [
        pa.field("entity", pa.string(), nullable=False),
        pa.field("period", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # "oracle_ebs" | "sap"
        pa.field("company", pa.string(), nullable=False),  # EBS balancing segment / SAP company code
        pa.field("account", pa.string(), nullable=False),  # natural account, as the source writes it
        pa.field("account_type", pa.string()),  # EBS ACCOUNT_TYPE: A L O R E
        pa.field("balance_sheet_account", pa.bool_()),  # SAP SKA1.XBILK = 'X'
        pa.field("pl_statement_type", pa.string()),  # SAP SKA1.GVTYP
        # Trading partner (SAP RASSC; EBS intercompany segment or dedicated intercompany account);
        # null when the balance is not intercompany.
        pa.field("partner", pa.string()),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("opening_balance", MONEY, nullable=False),
        pa.field("period_debit", MONEY, nullable=False),
        pa.field("period_credit", MONEY, nullable=False),
        pa.field("closing_balance", MONEY, nullable=False),
    ]
)

#: One row per entity, natural account, currency and trading partner for one fiscal period: the
#: GL rows of an account added up (staged under ``trial_balance/``). The account
#: attributes are carried so that the account mapping can use them.
TRIAL_BALANCE_SCHEMA = pa.schema(
    [
        pa.field("entity", pa.string(), nullable=False),
        pa.field("period", pa.string(), nullable=False),
        pa.field("account", pa.string(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("account_type", pa.string()),
        pa.field("balance_sheet_account", pa.bool_()),
        pa.field("pl_statement_type", pa.string()),
        pa.field("partner", pa.string()),  # trading partner id; null when not intercompany
        pa.field("opening_balance", MONEY, nullable=False),
        pa.field("period_debit", MONEY, nullable=False),
        pa.field("period_credit", MONEY, nullable=False),
        pa.field("closing_balance", MONEY, nullable=False),
        pa.field("source_rows", pa.int64(), nullable=False),  # GL rows added up into this account
    ]
)

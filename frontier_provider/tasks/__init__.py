"""The work of the DAGs' tasks that are not an operator: the DAG files import these and stay declarative.

* :mod:`.customer_credit`: ``frontier_customer_credit`` (customers, credit assessments, portfolio)
* :mod:`.adhoc_analysis`: ``frontier_adhoc_analysis`` (one company's statements, from a webhook)
* :mod:`.compliance_review`: ``frontier_compliance_review`` (a regulatory update, from a webhook)
* :mod:`.webhook_runs`: what the two webhook-triggered DAGs share

Each function takes plain arguments (the DAG passes the run's params and the
entities file's settings) and returns a small JSON-safe summary for XCom.
"""

"""The rules, by family: a rule's code says its module (MK3xx in mk3_*.py, MK12x in mk12_*.py)."""

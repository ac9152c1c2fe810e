"""Finance: fraud detection and credit scoring on tables, from a CSV to a served decision."""

"""Post-trade (issue 8): cross-border securities settlement instructions shared on the
ledger, encrypted, with an approval route; settled as a DVP by the Cross Framework."""

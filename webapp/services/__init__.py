"""Plain functions holding shoprelay's logic; views, RQ jobs and the CLI all call these."""

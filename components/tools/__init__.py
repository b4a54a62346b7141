"""The command-line tools and what only they need: `servingstack` (synth, check, cost), the offline
runtime with its recorded answers (offline/), the scanner and PR-summary runners, and the
component-package host. Nothing in the library layers imports from here."""

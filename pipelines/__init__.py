"""Command-line entry points of recon-match (`recon-match <command> ...`)."""

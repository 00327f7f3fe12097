"""The lab's core router: Linux forwarding in its namespace plus a route agent that installs
the aggregates the control plane advertises (the lab's stand-in for a BGP session)."""

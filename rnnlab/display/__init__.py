"""What is displayed: terminal progress and tables, character plots, and figures."""

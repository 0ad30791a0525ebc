from vcs_tools.chaos.cli import main

main()

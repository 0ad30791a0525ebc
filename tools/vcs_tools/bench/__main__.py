from vcs_tools.bench.cli import main

main()

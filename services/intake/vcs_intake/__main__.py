from vcs_intake.bootstrap import main

main()

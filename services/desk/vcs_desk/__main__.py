from vcs_desk.bootstrap import main

main()

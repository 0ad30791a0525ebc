from vcs_notifier.bootstrap import main

main()

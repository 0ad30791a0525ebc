from vcs_allocator.bootstrap import main

main()

from zoorank.cli import main

main()

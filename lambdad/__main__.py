from lambdad.cli import main

main()

from services.incidents.app import main

main()

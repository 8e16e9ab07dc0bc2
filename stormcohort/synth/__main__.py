from stormcohort.synth import main

main()

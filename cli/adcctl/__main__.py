"""python -m adcctl: the same as the adcctl console script."""
from .main import main

main()

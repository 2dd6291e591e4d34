"""python -m bicameral.checkpoint upgrade OLD.pt NEW.pt --trust"""

from bicameral.checkpoint.upgrade import main
from bicameral.errors import exit_on_bad_input

with exit_on_bad_input():
    main()

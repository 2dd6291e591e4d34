"""Train the bicameral LM in a checkout: python train.py [group=option ...] [key=value ...]

The same as the installed bicameral-train (bicameral/tools/train.py); python train.py --help lists the options.
"""

from bicameral.tools.train import cli

if __name__ == "__main__":
    cli()

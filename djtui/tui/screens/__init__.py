"""One module per capability screen (a Textual mode), each on ``base.DjtuiScreen``, plus full-screen views
such as the command log. Screens call services in workers; they never build SQL or touch the driver.
"""

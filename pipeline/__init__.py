"""pixtract: PDFs and chart images to Markdown, answers, JSON and tables (the library).

One module per step: discover -> render -> (messages) -> route -> (answers) -> outputs.
This package never imports Prefect; ``flows/`` wraps it.
"""

__version__ = "0.1.0"

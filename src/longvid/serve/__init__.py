"""Users of the pipeline that answer questions over HTTP (FastAPI and a small web page).
Filled in by the serving issue.
"""

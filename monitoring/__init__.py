"""Line monitoring: statistical process control of verdicts per station (p-chart, CUSUM, score drift).

Pure arithmetic over outcomes and scores: the service feeds it every verdict (serving/monitor.py),
training stores the score reference it compares against in the model card.
"""

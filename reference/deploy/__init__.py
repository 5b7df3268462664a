"""The deployment: SDL on Flower's deployment engine. Spec: spec/15-deployment.md"""

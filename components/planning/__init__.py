"""The pure planning core: catalogs (instances, models, images, prices with sources and dates),
model-fit sizing, node and pod resources, cost, and the node facts every layer shares.

Nothing in this package imports Pulumi (a test checks it), so each piece is tested directly and
reused by the config layer, the components and the command-line tools alike."""

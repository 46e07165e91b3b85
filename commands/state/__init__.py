"""The files xlsnap keeps on the host: private folders, atomic writes, metadata, memory images."""

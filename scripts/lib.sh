# Shared by the scripts: free loopback ports and waiting for a listener.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
# wait_port PORT [WHAT]: up to 15 s for something to listen on 127.0.0.1:PORT.
wait_port() {
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$1 ${2:+($2)}" >&2
  exit 1
}

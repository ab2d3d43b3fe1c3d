# rbclient.rb: each argument through ruby's Addrinfo.getaddrinfo and
# Resolv-free Socket.gethostbyname, printed for the glibc oracle.
require "socket"
ARGV.each do |n|
  out = "#{n}:"
  begin
    out += " " + Addrinfo.getaddrinfo(n, 80, nil, :STREAM).map(&:ip_address).join(" ")
  rescue SocketError => e
    out += " error #{e.class} #{e.message} #{e.respond_to?(:error_number) ? e.error_number : ''}"
  end
  begin
    out += " ip=" + IPSocket.getaddress(n)
  rescue SocketError => e
    out += " getaddress error #{e.message}"
  end
  puts out
end

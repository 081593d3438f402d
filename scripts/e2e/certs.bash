# shellcheck shell=bash
# gen_certs DIR: test certificates made with openssl: a CA and what it signs (server, client,
# expired, wrong host), a self-signed server certificate, another CA ("stranger" server and
# "otherclient" client), and client.key encrypted with the passphrase s3cret. Source it.
gen_certs() {
    local d=$1 subj=/O=mshmon-test
    mkdir -p "$d" || return 1
    ( cd "$d" || exit 1
      ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
      openssl req -x509 "${ec[@]}" -days 30 -subj "$subj/CN=test CA" -keyout ca.key -out ca.pem \
          -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null || exit 1
      openssl req -x509 "${ec[@]}" -days 30 -subj "$subj/CN=other CA" -keyout other.key -out other.pem \
          -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null || exit 1
      # sign NAME CA SAN [START END]: a certificate for NAME signed by CA; START/END (openssl ca dates) for one in the past.
      sign() {
          local name=$1 ca=$2 san=$3
          openssl req "${ec[@]}" -subj "$subj/CN=$name" -keyout "$name.key" -out "$name.csr" 2>/dev/null || return 1
          printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$san" > "$name.ext"
          if [ $# -gt 3 ]; then
              mkdir -p "db-$name" && : > "db-$name/index.txt" && echo 01 > "db-$name/serial"
              printf '[ca]\ndefault_ca=c\n[c]\ndatabase=db-%s/index.txt\nnew_certs_dir=db-%s\nserial=db-%s/serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\nCN=supplied\n' \
                  "$name" "$name" "$name" > "$name.cnf"
              openssl ca -batch -notext -config "$name.cnf" -cert "$ca.pem" -keyfile "$ca.key" -in "$name.csr" \
                  -out "$name.pem" -extfile "$name.ext" -startdate "$4" -enddate "$5" 2>/dev/null
          else
              openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days 30 -sha256 \
                  -extfile "$name.ext" -out "$name.pem" 2>/dev/null
          fi
      }
      sign server ca "DNS:localhost,IP:127.0.0.1" &&
      sign expired ca "DNS:localhost,IP:127.0.0.1" 20240101000000Z 20240201000000Z &&
      sign wronghost ca "DNS:wrong.example" &&
      sign stranger other "DNS:localhost,IP:127.0.0.1" &&
      sign client ca "DNS:client" &&
      sign otherclient other "DNS:client" || exit 1
      openssl req -x509 "${ec[@]}" -days 30 -subj "$subj/CN=localhost" -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
          -keyout selfsigned.key -out selfsigned.pem 2>/dev/null || exit 1
      openssl pkey -in client.key -aes256 -passout pass:s3cret -out client-encrypted.key || exit 1
      chmod 644 ./*.pem ./*.key )
}

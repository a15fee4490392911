//! The application's own calls, by licence key or by serial — whichever it sent.

use super::*;
use protocol::application::LicenceRef;

impl Licentia {
    /// A licence key sent with a product code must be of that product.
    async fn check_ref(&self, licence: &LicenceRef) -> Result<()> {
        if let LicenceRef::Key {
            licence_key,
            product: Some(product),
        } = licence
        {
            self.check_key_product(licence_key, product).await?;
        }
        Ok(())
    }

    /// Binds the licence (or one of the serial's licences) to the machine.
    pub async fn activate_ref(
        &self,
        licence: &LicenceRef,
        fingerprint: &str,
        hostname: &str,
        channel: Channel,
    ) -> Result<Issued> {
        match licence {
            // The product is checked in the activation's own read.
            LicenceRef::Key {
                licence_key,
                product,
            } => {
                self.activate_for(
                    licence_key,
                    product.as_deref(),
                    fingerprint,
                    hostname,
                    channel,
                )
                .await
            }
            LicenceRef::Serial { product, serial } => {
                self.activate_serial(product, serial, fingerprint, hostname, channel)
                    .await
            }
        }
    }

    /// The application frees its licence on its machine, giving up `proof`, its code.
    pub async fn remove_ref(
        &self,
        licence: &LicenceRef,
        fingerprint: &str,
        proof: Option<&str>,
    ) -> Result<Removal> {
        self.check_ref(licence).await?;
        match licence {
            LicenceRef::Key { licence_key, .. } => {
                let remover = Remover::EndUser { proof };
                self.remove_activation(licence_key, Some(fingerprint), remover)
                    .await
            }
            LicenceRef::Serial { product, serial } => {
                self.remove_serial_activation(product, serial, fingerprint, proof)
                    .await
            }
        }
    }
}

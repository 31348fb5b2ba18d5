"""The DFSP menu's texts (``dfsp.*`` message ids), in English and French.

The English texts are the reference system's where it has one (SPEC section 2: tests
match them); ``gateway.ussd_menus.texts`` merges these tables into its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

DFSP_ENGLISH: Final[Mapping[str, str]] = {
    "dfsp.text": "{text}",
    "dfsp.welcome": "Welcome {first} {last}!",
    "dfsp.unknown_phone": "Welcome to {dfsp}! This phone has no account yet.",
    "dfsp.open_account": "Open Account",
    "dfsp.home.send": "Send money",
    "dfsp.home.sell": "Sell goods",
    "dfsp.home.pending": "Pending transactions",
    "dfsp.home.manage": "Manage account",
    "dfsp.home.switch": "Switch account",
    "dfsp.home.balance": "Check balance",
    "dfsp.home.ministatement": "Ministatement",
    "dfsp.home.settings": "Settings",
    "dfsp.home.cash_in": "Cash in",
    "dfsp.home.cash_out": "Cash out",
    "dfsp.ask_pin": "Enter PIN",
    # input checks
    "dfsp.bad_user_number": "A user number has 8 digits",
    "dfsp.bad_name": "Names: 1 to {max} characters",
    "dfsp.bad_account_name": "Account name: 1 to {max} characters",
    "dfsp.bad_national_id": "National id: 1 to {max} letters or digits",
    "dfsp.bad_date": "Write the date as YYYY-MM-DD",
    "dfsp.bad_pin": "A PIN has digits only",
    "dfsp.bad_amount": "Not a valid amount",
    # on-boarding
    "dfsp.onboard.ask_user_number": "Enter your user number\n1. Skip",
    "dfsp.onboard.ask_first_name": "Enter first name",
    "dfsp.onboard.ask_last_name": "Enter last name",
    "dfsp.onboard.ask_date_of_birth": "Enter date of birth (YYYY-MM-DD)",
    "dfsp.onboard.ask_national_id": "Enter national id",
    "dfsp.onboard.ask_account_name": "Enter account name:",
    "dfsp.onboard.choose_role": "Choose role:",
    "dfsp.role.customer": "Customer",
    "dfsp.role.merchant": "Merchant",
    "dfsp.role.agent": "Agent",
    "dfsp.onboard.ask_pin": "Enter PIN:",
    "dfsp.onboard.created": "Account created!\nUser number: {user_number}",
    # send money
    "dfsp.send.ask_destination": "Enter destination number",
    "dfsp.send.ask_amount": (
        "Destination name: {name}\nCurrency: {currency}\nEnter {currency} amount:"
    ),
    "dfsp.send.choose_own_account": "To which of your accounts?",
    "dfsp.send.no_other_account": "You have no other account to send to",
    "dfsp.send.confirm": "Amount: {amount}\nLocal fee: {fee}\nTotal: {total}\nEnter PIN",
    "dfsp.send.confirm_cross": (
        "Amount: {amount}\nLocal fee: {fee}\nScheme fee: {scheme_fee}\nTotal: {total}\nEnter PIN"
    ),
    "dfsp.send.confirm_kept": (
        "Amount: {amount}\nLocal fee: {fee}\nTotal: {total}\nReceiver fee: {receiver_fee}"
        " (from the amount)\nEnter PIN"
    ),
    "dfsp.send.confirm_cross_kept": (
        "Amount: {amount}\nLocal fee: {fee}\nScheme fee: {scheme_fee}\nTotal: {total}\n"
        "Receiver fee: {receiver_fee} (from the amount)\nEnter PIN"
    ),
    "dfsp.send.done": "Status: {status}\nTo: {name}\nAmount: {amount}\nFee: {fee}",
    # sell goods
    "dfsp.sell.ask_buyer": "To initiate the sale enter the user number of the buyer",
    "dfsp.sell.ask_amount": "Destination name: {name}\nEnter {currency} amount:",
    "dfsp.sell.sent": "Invoice request sent!",
    # pending transactions
    "dfsp.pending.choose": "Choose:",
    "dfsp.pending.incoming": "Incoming ({n})",
    "dfsp.pending.outgoing": "Outgoing ({n})",
    "dfsp.pending.pick": "Pick one:",
    "dfsp.pending.none": "No pending transactions",
    "dfsp.pending.item_in_invoice": "Invoice from {name} for {amount}",
    "dfsp.pending.item_in_cash_out": "Cash out at {name} for {amount}",
    "dfsp.pending.item_out_invoice": "Invoice to {name} for {amount}",
    "dfsp.pending.item_out_cash_out": "Cash out for {name}: {amount}",
    "dfsp.pending.detail_invoice": (
        "Pending transaction from {name} for {amount} plus fee of {fee}. Total transaction"
        " amount: {total} Please enter your PIN to approve or select 2 to reject.\n2. Reject"
    ),
    "dfsp.pending.detail_invoice_cross": (
        "Invoice from {name}\nAmount: {amount}\nLocal fee: {fee}\nScheme fee: {scheme_fee}"
        "\nTotal: {total}\nEnter PIN to approve or 2 to reject\n2. Reject"
    ),
    "dfsp.pending.detail_invoice_cross_kept": (
        "Invoice from {name}\nAmount: {amount}\nLocal fee: {fee}\nScheme fee: {scheme_fee}"
        "\nTotal: {total}\nReceiver fee: {receiver_fee} (from the amount)"
        "\nEnter PIN to approve or 2 to reject\n2. Reject"
    ),
    "dfsp.pending.detail_cash_out": (
        "Cash out at agent {name}: {amount} plus fee of {fee}. Total: {total} Please enter"
        " your PIN to approve or select 2 to reject.\n2. Reject"
    ),
    "dfsp.pending.paid_invoice": "Invoice paid!",
    "dfsp.pending.paid_cash_out": "Cash out approved! Collect {amount} from {name}.",
    "dfsp.pending.rejected": "Invoice rejected",
    "dfsp.pending.sent_invoice": "Invoice to {name} for {amount}: waiting for the buyer",
    "dfsp.pending.sent_cash_out": "Cash out for {name} of {amount}: waiting for the customer",
    # agents
    "dfsp.cash.ask_customer": "Enter customer user number",
    "dfsp.cash.ask_amount": "Customer: {name}\nEnter {currency} amount:",
    "dfsp.cash.confirm_in": "Cash in for {name}\nAmount: {amount}\nFee: {fee}\nEnter PIN",
    "dfsp.cash.done_in": "Cash in done\nAmount: {amount}\nTo: {name}",
    "dfsp.cash.out_requested": (
        "Cash out request sent\nAmount: {amount}\nTo: {name}\n"
        "The customer approves it in Pending transactions."
    ),
    # balance and ministatement
    "dfsp.balance.ask_pin": "Enter your PIN",
    "dfsp.balance.show": "Balance: {balance}",
    "dfsp.ministatement.ask_pin": "Enter your PIN to confirm ministatement request.",
    "dfsp.ministatement.show": "Ministatement:\nName;Amount;Date\n{rows}",
    "dfsp.ministatement.empty": "Ministatement:\nNo transactions yet",
    # switch account
    "dfsp.switch.choose": "Current account name: {name}\nSelect Account:",
    "dfsp.switch.item": "{name}",
    "dfsp.switch.none": "You don't have any other account to switch to",
    # manage account
    "dfsp.manage.choose": "Select which action you would like to take:",
    "dfsp.manage.add": "Add account",
    "dfsp.manage.edit": "Edit account",
    "dfsp.manage.close": "Close account",
    "dfsp.manage.info_item": "Account info",
    "dfsp.manage.add_holder": "Add holder",
    "dfsp.manage.remove_holder": "Remove holder",
    "dfsp.manage.ask_account_name": "Enter account name:",
    "dfsp.manage.ask_primary": "Make {name} your primary account?",
    "dfsp.manage.added": "Account {name} added",
    "dfsp.manage.edit_choose": "Edit account {name}:",
    "dfsp.manage.rename": "Rename",
    "dfsp.manage.make_primary": "Make primary",
    "dfsp.manage.ask_new_name": "Enter new account name:",
    "dfsp.manage.renamed": "Account renamed to {name}",
    "dfsp.manage.confirm_primary": "Make {name} your primary account. Enter PIN",
    "dfsp.manage.made_primary": "{name} is now your primary account",
    "dfsp.manage.confirm_close": "Close account {name}. Enter PIN",
    "dfsp.manage.closed": "Account {name} closed",
    "dfsp.manage.closed_last": "Your last account is closed. Thank you for using our service.",
    "dfsp.manage.info": "Account: {name}\nCurrency: {currency}\nPrimary: {primary}\nHolders:",
    "dfsp.manage.info_owner": "{name} (owner)",
    "dfsp.manage.info_signatory": "{name} (signatory)",
    "dfsp.manage.info_holder": "{name}",
    "dfsp.manage.ask_holder": "Enter account holder identifier:",
    "dfsp.manage.ask_signatory": (
        "Add {name} as account holder. Should this holder be signatory for the account?"
    ),
    "dfsp.manage.holder_added": "{name} added as account holder",
    "dfsp.manage.holder_added_signatory": "{name} added as signatory account holder",
    "dfsp.manage.remove_choose": "Remove which holder?",
    "dfsp.manage.remove_none": "No holder can be removed from this account",
    "dfsp.manage.confirm_remove": "Remove {name} from this account. Enter PIN",
    "dfsp.manage.holder_removed": "{name} removed from the account",
    # settings
    "dfsp.settings.choose": "Settings:",
    "dfsp.settings.change_pin": "Change PIN",
    "dfsp.settings.ask_old_pin": "Enter current PIN",
    "dfsp.settings.ask_new_pin": "Enter new PIN",
    "dfsp.settings.repeat_new_pin": "Enter new PIN again",
    "dfsp.settings.pins_differ": "The new PINs differ",
    "dfsp.settings.pin_changed": "PIN changed",
    # refusals
    "dfsp.error.wrong_pin": "Wrong PIN. Attempts left: {attempts}",
    "dfsp.error.pin_locked": (
        "Your PIN is locked after too many wrong PINs. Ask {dfsp} to unlock it."
    ),
    "dfsp.error.insufficient_funds": "Insufficient funds. Available: {available}",
    "dfsp.error.unknown_user": "Unknown user number",
    "dfsp.error.phone_registered": "This phone already has an account at {dfsp}",
    "dfsp.error.person_registered": "This person is already registered at {dfsp}",
    "dfsp.error.user_number_taken": "That user number is taken. Choose another or skip.",
    "dfsp.error.quote_changed": "The fee has changed. Please start again.",
    "dfsp.error.send_not_allowed": "You cannot send money from this account",
    "dfsp.error.view_not_allowed": "You cannot view this account",
    "dfsp.error.currency": "The accounts use different currencies",
    "dfsp.error.primary_cannot_close": "The primary account cannot be closed",
    "dfsp.error.account_not_empty": "The account has money: empty it before closing it",
    "dfsp.error.not_signatory": "Only a signatory of the account can do this",
    "dfsp.error.not_holder": "You do not hold this account",
    "dfsp.error.commission_account": "The commission account cannot do this",
    "dfsp.error.too_many_accounts": "You have the most accounts allowed",
    "dfsp.error.already_holder": "This person already holds the account",
    "dfsp.error.too_many_holders": "The account has the most holders allowed",
    "dfsp.error.last_signatory": "The last signatory cannot be removed",
    "dfsp.error.owner_cannot_be_removed": "The owner of the account cannot be removed",
    "dfsp.error.owner_always_signatory": "The owner always stays a signatory",
    "dfsp.error.unknown_account": "This account is no longer open",
    "dfsp.error.unknown_holder": "This person does not hold the account",
    "dfsp.error.invalid_account_request": "That account name cannot be used",
    "dfsp.error.not_merchant": "Only merchants can sell goods",
    "dfsp.error.not_agent": "Only agents can do this",
    "dfsp.error.invoice_not_pending": "This invoice is no longer pending",
    "dfsp.error.registration_refused": "Sorry, {dfsp} cannot open an account for this person",
    "dfsp.error.not_allowed": "This payment is not allowed. Please contact {dfsp}.",
    "dfsp.error.sender_blocked": "Your account is blocked. Please contact {dfsp}.",
    "dfsp.error.receiver_blocked": "This receiver cannot be paid. Please contact {dfsp}.",
    "dfsp.error.clearing_unavailable": (
        "Payments to other providers are not available now. Please try again later."
    ),
    "dfsp.error.cap_reached": (
        "Payments to other providers are paused: {dfsp} reached its limit at the switch."
        " Please try again later."
    ),
    "dfsp.error.central_refused": "The switch refused this payment. Please try again later.",
    "dfsp.error.forensic_unavailable": "Payments are paused for a moment. Please try again later.",
    "dfsp.error.other": "Sorry, that did not work ({id}). Please try again later.",
    "dfsp.limit.transfers_per_day": "Limit reached: transfers per day",
    "dfsp.limit.amount_per_day": "Limit reached: amount per day",
    "dfsp.limit.amount_per_week": "Limit reached: amount per week",
    "dfsp.limit.max_transfer": "Limit reached: maximum amount of one transfer",
    "dfsp.limit.max_balance": "Limit reached: the receiver's maximum balance",
    "dfsp.limit.other": "Limit reached",
    "dfsp.weak_pin.not_digits": "PIN refused: digits only",
    "dfsp.weak_pin.too_short": "PIN refused: too short",
    "dfsp.weak_pin.too_long": "PIN refused: too long",
    "dfsp.weak_pin.one_digit": "PIN refused: not all one digit",
    "dfsp.weak_pin.straight_run": "PIN refused: not a straight run like 1234",
    "dfsp.weak_pin.common": "PIN refused: too easy to guess",
}

DFSP_FRENCH: Final[Mapping[str, str]] = {
    "dfsp.text": "{text}",
    "dfsp.switch.item": "{name}",
    "dfsp.manage.info_holder": "{name}",
    "dfsp.welcome": "Bienvenue {first} {last} !",
    "dfsp.unknown_phone": "Bienvenue chez {dfsp} ! Ce téléphone n'a pas encore de compte.",
    "dfsp.open_account": "Ouvrir un compte",
    "dfsp.home.send": "Envoyer de l'argent",
    "dfsp.home.sell": "Vendre",
    "dfsp.home.pending": "Transactions en attente",
    "dfsp.home.manage": "Gérer le compte",
    "dfsp.home.switch": "Changer de compte",
    "dfsp.home.balance": "Solde",
    "dfsp.home.ministatement": "Mini-relevé",
    "dfsp.home.settings": "Réglages",
    "dfsp.home.cash_in": "Dépôt",
    "dfsp.home.cash_out": "Retrait",
    "dfsp.ask_pin": "Entrez le code PIN",
    "dfsp.bad_user_number": "Un numéro d'usager a 8 chiffres",
    "dfsp.bad_name": "Noms : 1 à {max} caractères",
    "dfsp.bad_account_name": "Nom du compte : 1 à {max} caractères",
    "dfsp.bad_national_id": "Pièce d'identité : 1 à {max} lettres ou chiffres",
    "dfsp.bad_date": "Écrivez la date AAAA-MM-JJ",
    "dfsp.bad_pin": "Un code PIN n'a que des chiffres",
    "dfsp.bad_amount": "Montant incorrect",
    "dfsp.onboard.ask_user_number": "Entrez votre numéro d'usager\n1. Passer",
    "dfsp.onboard.ask_first_name": "Entrez le prénom",
    "dfsp.onboard.ask_last_name": "Entrez le nom",
    "dfsp.onboard.ask_date_of_birth": "Entrez la date de naissance (AAAA-MM-JJ)",
    "dfsp.onboard.ask_national_id": "Entrez le numéro d'identité",
    "dfsp.onboard.ask_account_name": "Entrez le nom du compte :",
    "dfsp.onboard.choose_role": "Choisissez le rôle :",
    "dfsp.role.customer": "Client",
    "dfsp.role.merchant": "Marchand",
    "dfsp.role.agent": "Agent",
    "dfsp.onboard.ask_pin": "Entrez le code PIN :",
    "dfsp.onboard.created": "Compte créé !\nNuméro d'usager : {user_number}",
    "dfsp.send.ask_destination": "Entrez le numéro du destinataire",
    "dfsp.send.ask_amount": (
        "Destinataire : {name}\nDevise : {currency}\nEntrez le montant en {currency} :"
    ),
    "dfsp.send.choose_own_account": "Vers lequel de vos comptes ?",
    "dfsp.send.no_other_account": "Vous n'avez pas d'autre compte",
    "dfsp.send.confirm": "Montant : {amount}\nFrais : {fee}\nTotal : {total}\nEntrez le PIN",
    "dfsp.send.confirm_cross": (
        "Montant : {amount}\nFrais : {fee}\nFrais du réseau : {scheme_fee}\nTotal : {total}\n"
        "Entrez le PIN"
    ),
    "dfsp.send.confirm_kept": (
        "Montant : {amount}\nFrais : {fee}\nTotal : {total}\nFrais du destinataire :"
        " {receiver_fee} (sur le montant)\nEntrez le PIN"
    ),
    "dfsp.send.confirm_cross_kept": (
        "Montant : {amount}\nFrais : {fee}\nFrais du réseau : {scheme_fee}\nTotal : {total}\n"
        "Frais du destinataire : {receiver_fee} (sur le montant)\nEntrez le PIN"
    ),
    "dfsp.send.done": "Statut : {status}\nÀ : {name}\nMontant : {amount}\nFrais : {fee}",
    "dfsp.sell.ask_buyer": "Pour vendre, entrez le numéro d'usager de l'acheteur",
    "dfsp.sell.ask_amount": "Destinataire : {name}\nEntrez le montant en {currency} :",
    "dfsp.sell.sent": "Facture envoyée !",
    "dfsp.pending.choose": "Choisissez :",
    "dfsp.pending.incoming": "Reçues ({n})",
    "dfsp.pending.outgoing": "Envoyées ({n})",
    "dfsp.pending.pick": "Choisissez :",
    "dfsp.pending.none": "Aucune transaction en attente",
    "dfsp.pending.item_in_invoice": "Facture de {name} pour {amount}",
    "dfsp.pending.item_in_cash_out": "Retrait chez {name} de {amount}",
    "dfsp.pending.item_out_invoice": "Facture à {name} pour {amount}",
    "dfsp.pending.item_out_cash_out": "Retrait pour {name} : {amount}",
    "dfsp.pending.detail_invoice": (
        "Facture de {name} : {amount} plus frais de {fee}. Total : {total}. Entrez votre PIN"
        " pour payer ou 2 pour refuser.\n2. Refuser"
    ),
    "dfsp.pending.detail_invoice_cross": (
        "Facture de {name}\nMontant : {amount}\nFrais : {fee}\nFrais du réseau : {scheme_fee}"
        "\nTotal : {total}\nPIN pour payer ou 2 pour refuser\n2. Refuser"
    ),
    "dfsp.pending.detail_invoice_cross_kept": (
        "Facture de {name}\nMontant : {amount}\nFrais : {fee}\nFrais du réseau : {scheme_fee}"
        "\nTotal : {total}\nFrais du destinataire : {receiver_fee} (sur le montant)"
        "\nPIN pour payer ou 2 pour refuser\n2. Refuser"
    ),
    "dfsp.pending.detail_cash_out": (
        "Retrait chez {name} : {amount} plus frais de {fee}. Total : {total}. Entrez votre"
        " PIN pour accepter ou 2 pour refuser.\n2. Refuser"
    ),
    "dfsp.pending.paid_invoice": "Facture payée !",
    "dfsp.pending.paid_cash_out": "Retrait accepté ! Recevez {amount} de {name}.",
    "dfsp.pending.rejected": "Facture refusée",
    "dfsp.pending.sent_invoice": "Facture à {name} pour {amount} : en attente",
    "dfsp.pending.sent_cash_out": "Retrait pour {name} de {amount} : en attente",
    "dfsp.cash.ask_customer": "Entrez le numéro d'usager du client",
    "dfsp.cash.ask_amount": "Client : {name}\nEntrez le montant en {currency} :",
    "dfsp.cash.confirm_in": "Dépôt pour {name}\nMontant : {amount}\nFrais : {fee}\nEntrez le PIN",
    "dfsp.cash.done_in": "Dépôt fait\nMontant : {amount}\nÀ : {name}",
    "dfsp.cash.out_requested": (
        "Demande de retrait envoyée\nMontant : {amount}\nÀ : {name}\n"
        "Le client l'accepte dans Transactions en attente."
    ),
    "dfsp.balance.ask_pin": "Entrez votre code PIN",
    "dfsp.balance.show": "Solde : {balance}",
    "dfsp.ministatement.ask_pin": "Entrez votre PIN pour le mini-relevé.",
    "dfsp.ministatement.show": "Mini-relevé :\nNom;Montant;Date\n{rows}",
    "dfsp.ministatement.empty": "Mini-relevé :\nAucune opération",
    "dfsp.switch.choose": "Compte actuel : {name}\nChoisissez un compte :",
    "dfsp.switch.none": "Vous n'avez pas d'autre compte",
    "dfsp.manage.choose": "Que voulez-vous faire ?",
    "dfsp.manage.add": "Ajouter un compte",
    "dfsp.manage.edit": "Modifier le compte",
    "dfsp.manage.close": "Fermer le compte",
    "dfsp.manage.info_item": "Infos du compte",
    "dfsp.manage.add_holder": "Ajouter un titulaire",
    "dfsp.manage.remove_holder": "Retirer un titulaire",
    "dfsp.manage.ask_account_name": "Entrez le nom du compte :",
    "dfsp.manage.ask_primary": "Faire de {name} votre compte principal ?",
    "dfsp.manage.added": "Compte {name} ajouté",
    "dfsp.manage.edit_choose": "Modifier le compte {name} :",
    "dfsp.manage.rename": "Renommer",
    "dfsp.manage.make_primary": "Rendre principal",
    "dfsp.manage.ask_new_name": "Entrez le nouveau nom :",
    "dfsp.manage.renamed": "Compte renommé {name}",
    "dfsp.manage.confirm_primary": "Faire de {name} votre compte principal. Entrez le PIN",
    "dfsp.manage.made_primary": "{name} est votre compte principal",
    "dfsp.manage.confirm_close": "Fermer le compte {name}. Entrez le PIN",
    "dfsp.manage.closed": "Compte {name} fermé",
    "dfsp.manage.closed_last": "Votre dernier compte est fermé. Merci de votre confiance.",
    "dfsp.manage.info": "Compte : {name}\nDevise : {currency}\nPrincipal : {primary}\nTitulaires :",
    "dfsp.manage.info_owner": "{name} (propriétaire)",
    "dfsp.manage.info_signatory": "{name} (signataire)",
    "dfsp.manage.ask_holder": "Entrez l'identifiant du titulaire :",
    "dfsp.manage.ask_signatory": "Ajouter {name} comme titulaire. Signataire du compte ?",
    "dfsp.manage.holder_added": "{name} ajouté comme titulaire",
    "dfsp.manage.holder_added_signatory": "{name} ajouté comme titulaire signataire",
    "dfsp.manage.remove_choose": "Retirer quel titulaire ?",
    "dfsp.manage.remove_none": "Aucun titulaire ne peut être retiré",
    "dfsp.manage.confirm_remove": "Retirer {name} du compte. Entrez le PIN",
    "dfsp.manage.holder_removed": "{name} retiré du compte",
    "dfsp.settings.choose": "Réglages :",
    "dfsp.settings.change_pin": "Changer le PIN",
    "dfsp.settings.ask_old_pin": "Entrez le PIN actuel",
    "dfsp.settings.ask_new_pin": "Entrez le nouveau PIN",
    "dfsp.settings.repeat_new_pin": "Entrez encore le nouveau PIN",
    "dfsp.settings.pins_differ": "Les nouveaux PIN diffèrent",
    "dfsp.settings.pin_changed": "PIN changé",
    "dfsp.error.wrong_pin": "PIN incorrect. Essais restants : {attempts}",
    "dfsp.error.pin_locked": "PIN bloqué après trop d'erreurs. Demandez à {dfsp} de le débloquer.",
    "dfsp.error.insufficient_funds": "Solde insuffisant. Disponible : {available}",
    "dfsp.error.unknown_user": "Numéro d'usager inconnu",
    "dfsp.error.phone_registered": "Ce téléphone a déjà un compte chez {dfsp}",
    "dfsp.error.person_registered": "Cette personne est déjà inscrite chez {dfsp}",
    "dfsp.error.user_number_taken": "Ce numéro d'usager est pris. Choisissez-en un autre.",
    "dfsp.error.quote_changed": "Les frais ont changé. Recommencez.",
    "dfsp.error.send_not_allowed": "Vous ne pouvez pas envoyer depuis ce compte",
    "dfsp.error.view_not_allowed": "Vous ne pouvez pas voir ce compte",
    "dfsp.error.currency": "Les comptes n'ont pas la même devise",
    "dfsp.error.primary_cannot_close": "Le compte principal ne peut pas être fermé",
    "dfsp.error.account_not_empty": "Le compte n'est pas vide : videz-le d'abord",
    "dfsp.error.not_signatory": "Seul un signataire du compte peut le faire",
    "dfsp.error.not_holder": "Vous n'êtes pas titulaire de ce compte",
    "dfsp.error.commission_account": "Le compte de commission ne le permet pas",
    "dfsp.error.too_many_accounts": "Vous avez le nombre maximal de comptes",
    "dfsp.error.already_holder": "Cette personne est déjà titulaire",
    "dfsp.error.too_many_holders": "Le compte a le nombre maximal de titulaires",
    "dfsp.error.last_signatory": "Le dernier signataire ne peut pas être retiré",
    "dfsp.error.owner_cannot_be_removed": "Le propriétaire ne peut pas être retiré",
    "dfsp.error.owner_always_signatory": "Le propriétaire reste toujours signataire",
    "dfsp.error.unknown_account": "Ce compte n'est plus ouvert",
    "dfsp.error.unknown_holder": "Cette personne n'est pas titulaire du compte",
    "dfsp.error.invalid_account_request": "Ce nom de compte n'est pas possible",
    "dfsp.error.not_merchant": "Seuls les marchands peuvent vendre",
    "dfsp.error.not_agent": "Seuls les agents peuvent le faire",
    "dfsp.error.invoice_not_pending": "Cette facture n'est plus en attente",
    "dfsp.error.registration_refused": (
        "Désolé, {dfsp} ne peut pas ouvrir de compte pour cette personne"
    ),
    "dfsp.error.not_allowed": "Ce paiement n'est pas autorisé. Contactez {dfsp}.",
    "dfsp.error.sender_blocked": "Votre compte est bloqué. Contactez {dfsp}.",
    "dfsp.error.receiver_blocked": "Ce bénéficiaire ne peut pas être payé. Contactez {dfsp}.",
    "dfsp.error.clearing_unavailable": (
        "Les paiements vers les autres opérateurs sont indisponibles. Réessayez plus tard."
    ),
    "dfsp.error.cap_reached": (
        "Paiements vers les autres opérateurs suspendus : {dfsp} a atteint sa limite."
        " Réessayez plus tard."
    ),
    "dfsp.error.central_refused": "Le réseau a refusé ce paiement. Réessayez plus tard.",
    "dfsp.error.forensic_unavailable": (
        "Les paiements sont suspendus un instant. Réessayez plus tard."
    ),
    "dfsp.error.other": "Désolé, cela n'a pas marché ({id}). Réessayez plus tard.",
    "dfsp.limit.transfers_per_day": "Plafond atteint : transferts par jour",
    "dfsp.limit.amount_per_day": "Plafond atteint : montant par jour",
    "dfsp.limit.amount_per_week": "Plafond atteint : montant par semaine",
    "dfsp.limit.max_transfer": "Plafond atteint : montant d'un transfert",
    "dfsp.limit.max_balance": "Plafond atteint : solde maximal du destinataire",
    "dfsp.limit.other": "Plafond atteint",
    "dfsp.weak_pin.not_digits": "PIN refusé : chiffres seulement",
    "dfsp.weak_pin.too_short": "PIN refusé : trop court",
    "dfsp.weak_pin.too_long": "PIN refusé : trop long",
    "dfsp.weak_pin.one_digit": "PIN refusé : pas un seul chiffre répété",
    "dfsp.weak_pin.straight_run": "PIN refusé : pas une suite comme 1234",
    "dfsp.weak_pin.common": "PIN refusé : trop facile à deviner",
}

"""Interface strings in Spanish, Catalan and English; one dict per language.

``t(key)`` gives the string in the request's language: the one chosen with the
switcher (kept in the session cookie), else the browser's Accept-Language, else
Spanish. A key missing in one language falls back to English, then to the key itself;
a test checks that every language has every key.
"""

from __future__ import annotations

from flask import request, session

LANGUAGES = ("es", "ca", "en")
LANGUAGE_NAMES = {"es": "Español", "ca": "Català", "en": "English"}
DEFAULT = "es"

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "phone": "Phone",
        "skills": "Skills", "capacity": "Capacity", "configure_agent": "Add or change an agent", "empty_all": "empty: every queue", "save": "Save", "nav_agents": "Agents",
        "app": "Centralita", "skip": "Skip to content", "language": "Language",
        "change": "Change", "login": "Log in", "logout": "Log out", "user": "User name",
        "password": "Password", "login_failed": "Wrong user name or password.",
        "login_title": "Log in to Centralita", "logged_out": "You have logged out.",
        "forbidden": "This page is not for your role.", "go_home": "Go to your page",
        "nav_flows": "Call flows", "nav_agent": "Agent console", "nav_dashboard": "Dashboard",
        "csrf_failed": "The form expired. Reload the page and try again.",
        "flows_title": "Call flows", "lines": "Lines", "line": "Line", "numbers": "Numbers",
        "flow": "Flow", "flows": "Flows", "version": "Version", "languages": "Languages",
        "hours": "Hours", "holidays": "Holidays", "default_line": "default",
        "nodes": "Nodes", "edit": "Edit", "published": "published", "draft": "draft",
        "editor": "Editor", "graph": "Graph", "yaml": "YAML",
        "valid": "No problems found.", "problems": "Problems", "save_draft": "Save draft",
        "saved": "Draft saved as version {n}.", "publish": "Publish",
        "published_ok": "Version {n} published: new calls use it; calls in progress keep theirs.",
        "versions": "Versions", "author": "Author", "when": "When",
        "rollback": "Roll back to this", "open": "Open", "simulator": "Call simulator",
        "sim_help": "Tests the text in the editor (the draft) without Twilio: press keys or "
                    "say a phrase.",
        "keys": "Keys", "press": "Press", "phrase": "Phrase", "say": "Say",
        "silence": "Silence", "restart": "New call", "caller": "Caller number",
        "sim_node": "node", "sim_ended": "Call ended",
        "prompts": "Prompts per language", "missing": "missing", "node": "Node",
        "field": "Text", "not_publishable": "Fix the problems before saving.",
        "unchanged_version": "The version is unchanged: bump 'version:' so calls can be "
                             "told apart.",
        "agent_title": "Agent console", "state": "State", "available": "Available",
        "paused": "Paused", "reason": "Reason", "break": "Break", "training": "Training",
        "other": "Other", "offline": "Offline", "busy": "On a call",
        "reserved": "Call offered", "wrap_up": "Wrap-up", "no_offer": "No call offered.",
        "offered_call": "Incoming call", "accept": "Accept", "decline": "Decline",
        "waited": "Waited", "queue": "Queue", "said": "What they said and chose",
        "intent": "Topic", "recent_calls": "Recent calls", "follow_ups": "Open follow-ups",
        "unknown_caller": "Unknown caller", "summary": "Summary", "outcome": "Outcome",
        "resolved": "Resolved", "unresolved": "Not resolved", "escalated": "Escalated",
        "complete": "End call", "approve": "Save summary", "new_follow_up": "Open a follow-up",
        "description": "Description", "back_available": "Back to available",
        "summary_pending": "The summary is being written; it appears here when ready.",
        "no_agent": "Your login has no agent id; ask an admin to add one.",
        "dashboard_title": "Live dashboard", "in_ivr": "Calls in the IVR",
        "waiting": "Waiting", "longest": "Longest wait", "ewt": "Estimated wait",
        "agents_by_state": "Agents by state", "service_level": "Service level",
        "abandonment": "Abandonment", "callbacks": "Callbacks pending",
        "history": "History (last 7 days)", "calls": "Calls", "answered": "Answered",
        "abandoned": "Abandoned", "no_data": "No data yet.", "updated": "Updated",
        "agents": "Agents", "agent": "Agent",
        "connection_lost": "Live updates interrupted; retrying.", "customer": "Customer",
        "vip": "VIP", "account": "Account", "error": "Error", "saved_ok": "Saved.",
        "funnel": "Where callers leave the IVR", "by_day": "Calls per day",
        "by_queue": "Per queue", "by_agent": "Per agent",
    },
    "es": {
        "phone": "Teléfono",
        "skills": "Habilidades", "capacity": "Capacidad", "configure_agent": "Añadir o cambiar un agente", "empty_all": "vacío: todas las colas", "save": "Guardar", "nav_agents": "Agentes",
        "app": "Centralita", "skip": "Ir al contenido", "language": "Idioma",
        "change": "Cambiar", "login": "Entrar", "logout": "Salir", "user": "Usuario",
        "password": "Contraseña", "login_failed": "Usuario o contraseña incorrectos.",
        "login_title": "Entrar en Centralita", "logged_out": "Ha salido de la sesión.",
        "forbidden": "Esta página no es para su rol.", "go_home": "Ir a su página",
        "nav_flows": "Flujos de llamada", "nav_agent": "Consola de agente",
        "nav_dashboard": "Panel",
        "csrf_failed": "El formulario ha caducado. Recargue la página y vuelva a intentarlo.",
        "flows_title": "Flujos de llamada", "lines": "Líneas", "line": "Línea",
        "numbers": "Números", "flow": "Flujo", "flows": "Flujos", "version": "Versión",
        "languages": "Idiomas", "hours": "Horario", "holidays": "Festivos",
        "default_line": "por defecto", "nodes": "Nodos", "edit": "Editar",
        "published": "publicada", "draft": "borrador", "editor": "Editor", "graph": "Grafo",
        "yaml": "YAML", "valid": "Sin problemas.", "problems": "Problemas",
        "save_draft": "Guardar borrador", "saved": "Borrador guardado como versión {n}.",
        "publish": "Publicar",
        "published_ok": "Versión {n} publicada: la usan las llamadas nuevas; las que están "
                        "en curso siguen con la suya.",
        "versions": "Versiones", "author": "Autor", "when": "Cuándo",
        "rollback": "Volver a esta", "open": "Abrir", "simulator": "Simulador de llamadas",
        "sim_help": "Prueba el texto del editor (el borrador) sin Twilio: pulse teclas o diga "
                    "una frase.",
        "keys": "Teclas", "press": "Pulsar", "phrase": "Frase", "say": "Decir",
        "silence": "Silencio", "restart": "Nueva llamada", "caller": "Número que llama",
        "sim_node": "nodo", "sim_ended": "Llamada terminada",
        "prompts": "Mensajes por idioma", "missing": "falta", "node": "Nodo",
        "field": "Texto", "not_publishable": "Corrija los problemas antes de guardar.",
        "unchanged_version": "La versión no ha cambiado: suba 'version:' para distinguir las "
                             "llamadas.",
        "agent_title": "Consola de agente", "state": "Estado", "available": "Disponible",
        "paused": "En pausa", "reason": "Motivo", "break": "Descanso",
        "training": "Formación", "other": "Otro", "offline": "Desconectado",
        "busy": "En llamada", "reserved": "Llamada ofrecida", "wrap_up": "Cierre",
        "no_offer": "Ninguna llamada ofrecida.", "offered_call": "Llamada entrante",
        "accept": "Aceptar", "decline": "Rechazar", "waited": "Ha esperado", "queue": "Cola",
        "said": "Lo que dijo y eligió", "intent": "Tema",
        "recent_calls": "Llamadas recientes", "follow_ups": "Seguimientos abiertos",
        "unknown_caller": "Llamante desconocido", "summary": "Resumen",
        "outcome": "Resultado", "resolved": "Resuelta", "unresolved": "No resuelta",
        "escalated": "Escalada", "complete": "Terminar llamada", "approve": "Guardar resumen",
        "new_follow_up": "Abrir un seguimiento", "description": "Descripción",
        "back_available": "Volver a disponible",
        "summary_pending": "El resumen se está escribiendo; aparecerá aquí cuando esté listo.",
        "no_agent": "Su usuario no tiene identificador de agente; pídalo a un administrador.",
        "dashboard_title": "Panel en directo", "in_ivr": "Llamadas en el IVR",
        "waiting": "En espera", "longest": "Espera más larga", "ewt": "Espera estimada",
        "agents_by_state": "Agentes por estado", "service_level": "Nivel de servicio",
        "abandonment": "Abandono", "callbacks": "Devoluciones de llamada pendientes",
        "history": "Histórico (últimos 7 días)", "calls": "Llamadas",
        "answered": "Atendidas", "abandoned": "Abandonadas", "no_data": "Aún no hay datos.",
        "updated": "Actualizado", "agents": "Agentes", "agent": "Agente",
        "connection_lost": "Actualización en directo interrumpida; reintentando.",
        "customer": "Cliente", "vip": "VIP", "account": "Cuenta", "error": "Error",
        "saved_ok": "Guardado.", "funnel": "Dónde abandonan el IVR",
        "by_day": "Llamadas por día", "by_queue": "Por cola", "by_agent": "Por agente",
    },
    "ca": {
        "phone": "Telèfon",
        "skills": "Habilitats", "capacity": "Capacitat", "configure_agent": "Afegeix o canvia un agent", "empty_all": "buit: totes les cues", "save": "Desa", "nav_agents": "Agents",
        "app": "Centralita", "skip": "Vés al contingut", "language": "Idioma",
        "change": "Canvia", "login": "Entra", "logout": "Surt", "user": "Usuari",
        "password": "Contrasenya", "login_failed": "Usuari o contrasenya incorrectes.",
        "login_title": "Entra a Centralita", "logged_out": "Heu sortit de la sessió.",
        "forbidden": "Aquesta pàgina no és per al vostre rol.",
        "go_home": "Aneu a la vostra pàgina", "nav_flows": "Fluxos de trucada",
        "nav_agent": "Consola d'agent", "nav_dashboard": "Tauler",
        "csrf_failed": "El formulari ha caducat. Torneu a carregar la pàgina i proveu-ho "
                       "de nou.",
        "flows_title": "Fluxos de trucada", "lines": "Línies", "line": "Línia",
        "numbers": "Números", "flow": "Flux", "flows": "Fluxos", "version": "Versió",
        "languages": "Idiomes", "hours": "Horari", "holidays": "Festius",
        "default_line": "per defecte", "nodes": "Nodes", "edit": "Edita",
        "published": "publicada", "draft": "esborrany", "editor": "Editor", "graph": "Graf",
        "yaml": "YAML", "valid": "Cap problema.", "problems": "Problemes",
        "save_draft": "Desa l'esborrany", "saved": "Esborrany desat com a versió {n}.",
        "publish": "Publica",
        "published_ok": "Versió {n} publicada: la fan servir les trucades noves; les que són "
                        "en curs continuen amb la seva.",
        "versions": "Versions", "author": "Autor", "when": "Quan",
        "rollback": "Torna a aquesta", "open": "Obre", "simulator": "Simulador de trucades",
        "sim_help": "Prova el text de l'editor (l'esborrany) sense Twilio: premeu tecles o "
                    "digueu una frase.",
        "keys": "Tecles", "press": "Prem", "phrase": "Frase", "say": "Digues",
        "silence": "Silenci", "restart": "Trucada nova", "caller": "Número que truca",
        "sim_node": "node", "sim_ended": "Trucada acabada",
        "prompts": "Missatges per idioma", "missing": "falta", "node": "Node",
        "field": "Text", "not_publishable": "Corregiu els problemes abans de desar.",
        "unchanged_version": "La versió no ha canviat: apugeu 'version:' per distingir les "
                             "trucades.",
        "agent_title": "Consola d'agent", "state": "Estat", "available": "Disponible",
        "paused": "En pausa", "reason": "Motiu", "break": "Descans", "training": "Formació",
        "other": "Altre", "offline": "Desconnectat", "busy": "En trucada",
        "reserved": "Trucada oferta", "wrap_up": "Tancament",
        "no_offer": "Cap trucada oferta.", "offered_call": "Trucada entrant",
        "accept": "Accepta", "decline": "Rebutja", "waited": "Ha esperat", "queue": "Cua",
        "said": "El que va dir i triar", "intent": "Tema",
        "recent_calls": "Trucades recents", "follow_ups": "Seguiments oberts",
        "unknown_caller": "Persona desconeguda", "summary": "Resum", "outcome": "Resultat",
        "resolved": "Resolta", "unresolved": "No resolta", "escalated": "Escalada",
        "complete": "Acaba la trucada", "approve": "Desa el resum",
        "new_follow_up": "Obre un seguiment", "description": "Descripció",
        "back_available": "Torna a disponible",
        "summary_pending": "El resum s'està escrivint; apareixerà aquí quan estigui llest.",
        "no_agent": "El vostre usuari no té identificador d'agent; demaneu-lo a un "
                    "administrador.",
        "dashboard_title": "Tauler en directe", "in_ivr": "Trucades a l'IVR",
        "waiting": "En espera", "longest": "Espera més llarga", "ewt": "Espera estimada",
        "agents_by_state": "Agents per estat", "service_level": "Nivell de servei",
        "abandonment": "Abandonament", "callbacks": "Retorns de trucada pendents",
        "history": "Històric (darrers 7 dies)", "calls": "Trucades", "answered": "Ateses",
        "abandoned": "Abandonades", "no_data": "Encara no hi ha dades.",
        "updated": "Actualitzat", "agents": "Agents", "agent": "Agent",
        "connection_lost": "Actualització en directe interrompuda; es torna a provar.",
        "customer": "Client", "vip": "VIP", "account": "Compte", "error": "Error",
        "saved_ok": "Desat.", "funnel": "On abandonen l'IVR",
        "by_day": "Trucades per dia", "by_queue": "Per cua", "by_agent": "Per agent",
    },
}


def language() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    best = request.accept_languages.best_match(LANGUAGES)
    return best or DEFAULT


def t(key: str, **values: object) -> str:
    lang = language()
    text = STRINGS[lang].get(key) or STRINGS["en"].get(key) or key
    return text.format(**values) if values else text


def strings(*keys: str) -> dict[str, str]:
    """Strings for the pages' JavaScript, in the request's language."""
    return {key: t(key) for key in keys}
